"""Named training presets (YAML), resolved by `ladkit train --config NAME`."""

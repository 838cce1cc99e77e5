"""ladkit: RL post-training of LLMs with LAD (Learning Advantage Distribution), GRPO and FlowRL.

The package root stays import-light (no torch) so that `ladkit --help` answers instantly;
import the submodules you need: `ladkit.objectives`, `ladkit.advantages`, `ladkit.bandit`, ...
"""

__version__ = "0.1.0"

"""What every ladkit notebook dashboard shares: the optional widget import and how a dashboard shows itself."""

from __future__ import annotations

from typing import Any

from ladkit.errors import LadkitError


def require_widgets() -> Any:
    """The ipywidgets module, or a LadkitError naming the extra to install."""
    try:
        import anywidget  # noqa: F401  (plotly's FigureWidget is an anywidget)
        import ipywidgets
    except ImportError as err:
        raise LadkitError(
            f"ladkit's notebook dashboards need ipywidgets and anywidget ({err.name or 'a widget library'} is missing);"
            " install the notebooks extra: pip install 'ladkit[notebooks]'"
        ) from None
    return ipywidgets


class WidgetDashboard:
    """Mixin: a dashboard whose whole UI is the ipywidgets box `self._box`."""

    _box: Any

    @property
    def widget(self) -> Any:
        """The whole dashboard as one ipywidgets VBox."""
        return self._box

    def display(self) -> None:
        """Show the dashboard in the current cell (leaving `dash` last in a cell does the same)."""
        from IPython.display import display

        display(self._box)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return self._box._repr_mimebundle_(**kwargs)

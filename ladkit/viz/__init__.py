"""Interactive views: Jupyter dashboards built from ipywidgets and plotly FigureWidgets."""

"""The analysts' workbench: an offline HTML report of a ``score`` output folder, and ``show`` for one alert.

``data`` reads and aggregates (pandas, pyarrow); ``page`` renders HTML with plotly, which is an
optional extra (``pip install 'fraudrules[report]'``) imported only when a page is made;
``show`` prints one alert with rich.
"""

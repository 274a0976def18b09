"""Developer and operator tooling around the runtime in ``pipeline``: the local stack,
benchmarks, the demo and its sample, producing events, and the CLI's offline helpers.

The runtime never imports this package; the ``cdp`` CLI loads it lazily, and its extra
dependencies come with ``pip install 'cdp-pipeline[tools]'``.
"""

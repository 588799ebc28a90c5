"""ccpipe: Common Crawl WARC files to training-ready token shards, the FineWeb way.

`pipeline/` turns a config into running work; the stages themselves live in `stages/`.
"""

__version__ = "0.1.0"

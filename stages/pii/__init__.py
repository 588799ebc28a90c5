"""PII scrubbing: presidio's analyzer with ccpipe's recognizers."""

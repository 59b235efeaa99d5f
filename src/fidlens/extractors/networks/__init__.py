"""The network code of the built-in extractor types (torch, dlib): imported only when an
extractor is built, never while the workflow parses (see `fidlens.extractors`)."""

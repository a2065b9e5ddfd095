"""One module per CLI command, each with `register(subparsers)`; see assistant/cli.py."""

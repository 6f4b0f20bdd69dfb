"""The `gaitpay` command line: the local stack, traces, configuration."""

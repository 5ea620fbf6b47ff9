"""Defaults shared by the command line and the node, in a module that imports nothing heavy
(the command line and the verification worker processes import it quickly)."""

DEFAULT_LISTEN = "/ip4/0.0.0.0/tcp/4717"
DEFAULT_RPC_PORT = 4718
DEFAULT_EVENT_QUEUE = 1000

"""nbcall's test suite."""

import os

# Every frame a server sends, and every frame a test's SignalingClient receives, is checked
# against the wire's declarations (nbcall/signaling/wire.py): in this process and in every
# server, kernel and Jupyter server the tests start, which inherit the environment.  Set
# here, before any test module imports nbcall (wire.CHECKING is read once, at import).
os.environ["NBCALL_WIRE_CHECK"] = "1"

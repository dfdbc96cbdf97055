"""nbcall's benchmarks (not part of the test suite); run them from the checkout's root as modules:

    .venv/bin/python -m benchmarks.forwarding
    .venv/bin/python -m benchmarks.memory
    .venv/bin/python -m benchmarks.call_setup

See README.md here for what they measure and their results.
"""

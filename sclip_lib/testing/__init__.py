"""Test helpers that are useful outside the test suite too: a local Hugging Face hub (``hub.py``) and the
repos it serves (``hub_repos.py``). Run ``python -m sclip_lib.testing.hub --help`` to try real mode offline."""

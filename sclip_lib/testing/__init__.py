"""Test helpers that are useful outside the test suite too: a local Hugging Face hub (``hub.py``), the repos it
serves (``hub_repos.py``), where real samples are (``samples.py``) and which browser checks the site
(``browser.py``). Run ``python -m sclip_lib.testing --help`` to try real mode offline."""

# Set-up: on Colab or a fresh machine, install sclip_lib from the repository; pick the GPU if any.
try:
    import sclip_lib
except ImportError:
    import subprocess, sys
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "sclip_lib[book] @ git+{repository_url}"])
    import sclip_lib

import sclip_lib as sl
from sclip_lib import book

cfg = book.setup()  # mode from $SCLIP_BOOK_MODE (real unless set to smoke), device, banner

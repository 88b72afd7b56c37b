"""python -m sample_app.traffic --url http://127.0.0.1:8080 --rate 10 --duration 30"""

import sys

from sample_app.traffic.cli import main

sys.exit(main())

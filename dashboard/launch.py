"""Streamlit's own command line, started after importing what the pages need, so the first
visitor does not wait for pandas, Altair, SQLAlchemy and the engine to import."""

import sys

import altair  # noqa: F401
import pandas  # noqa: F401
from streamlit.web.cli import main

import dashboard.queries  # noqa: F401
import engine.storage.db  # noqa: F401

if __name__ == "__main__":
    engine.storage.db.head_revision()
    sys.argv[0] = "streamlit"
    main()

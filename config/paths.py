"""Where the code lives and where the embedded default keeps its data."""

from pathlib import Path

from config.env import env_str

BASE_DIR = Path(__file__).resolve().parent.parent
# Everything the embedded default writes (SQLite, artifacts, broker spool) lives below one dir.
DATA_DIR = Path(env_str("LEDGERFLOW_DATA_DIR", str(BASE_DIR / "var"))).resolve()

"""Where `bench data fetch` gets each data file the real tasks read."""

import json
from pathlib import Path

from forgetbench.task import DataSource, register_data_source

HERE = Path(__file__).parent


# Where `bench data fetch` gets each file: the files of ../shared/data from the public GitHub commits they were
# taken from, each pinned by its sha256 (data_sources.json; a test checks the digests against ../shared/data);
# HellaSwag and SciQ, which ../shared/data lacks, from lm-eval's hub datasets in their original schema.
def _jsonl_bytes(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def _json_array_bytes(rows: list[dict]) -> bytes:
    return json.dumps(rows, ensure_ascii=False, indent=1).encode()


for _path, _pin in json.loads((HERE / "data_sources.json").read_text()).items():
    register_data_source(DataSource(_path, url=_pin["url"], sha256=_pin["sha256"]))
register_data_source(DataSource("hellaswag/hellaswag_val.jsonl", hub=("Rowan/hellaswag", None, "validation"),
                                write=_jsonl_bytes))
register_data_source(DataSource("sciq/test.json", hub=("allenai/sciq", None, "test"), write=_json_array_bytes))

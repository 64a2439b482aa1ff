"""Peak memory of reading Parquet through m3cls' reader, for files of growing size.

Writes files of 60-word texts (row groups of 10,000 rows) and reads each in a fresh process with
``m3cls.data.readers.iter_items`` (what ``predict --input`` streams from), printing its peak RSS. Bounded reading shows
as a peak that stays nearly flat while the file grows.

    python benchmarks/parquet_memory.py [--rows 20000 400000 1600000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

# the peak is VmHWM of the reading process: ru_maxrss would keep the writer's peak across fork and exec
READ = """
import json, sys
from m3cls.data.readers import ReadOptions, iter_items
n = sum(1 for _ in iter_items(sys.argv[1], ReadOptions()))
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"rows": n, "peak_rss_mb": peak // 1024}))
"""


def write_file(path: str, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(0)
    words = "the a of and to in it is was for on that this with market shares profit team game film".split()
    writer = None
    for start in range(0, rows, 100_000):
        texts = [" ".join(rng.choice(words) for _ in range(60)) for _ in range(min(100_000, rows - start))]
        table = pa.table({"text": texts})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=10_000)
    writer.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[20_000, 400_000, 1_600_000])
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for rows in a.rows:
            path = os.path.join(folder, f"texts{rows}.parquet")
            write_file(path, rows)
            out = subprocess.run([sys.executable, "-c", READ, path], capture_output=True, text=True, check=True)
            result = json.loads(out.stdout)
            print(json.dumps({**result, "file_mb": round(os.path.getsize(path) / 2**20, 1)}))


if __name__ == "__main__":
    main()

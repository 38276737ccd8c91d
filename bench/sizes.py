"""Stripped release binary size and Lambda zip size (the binary as `bootstrap`, deflate level 9,
as `cargo lambda build --output-format zip` packs it) per function.
Usage: python3 bench/sizes.py BIN_DIR OUT.json FUNCTION...   (STRIP: the strip of the binaries'
architecture, default `strip`)
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile

bin_dir, out, functions = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
rows = []
for name in functions:
    binary = bin_dir / name
    with tempfile.TemporaryDirectory() as tmp:
        stripped = pathlib.Path(tmp) / "bootstrap"
        # The release profile strips symbols already; strip again to be sure of what is counted.
        subprocess.run([os.environ.get("STRIP", "strip"), "-o", str(stripped), str(binary)], check=True)
        archive = pathlib.Path(tmp) / f"{name}.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            z.write(stripped, "bootstrap")
        rows.append({
            "function": name,
            "binary_bytes": binary.stat().st_size,
            "stripped_bytes": stripped.stat().st_size,
            "zip_bytes": archive.stat().st_size,
        })
        print(f"{name:<16} {rows[-1]['stripped_bytes'] / 1e6:6.1f} MB stripped, zip {rows[-1]['zip_bytes'] / 1e6:5.1f} MB")
pathlib.Path(out).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")

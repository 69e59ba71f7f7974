"""Write the example's data: gan-bench's offline `shapes` doodles as PNG files and a CSV listing them.

    python examples/make_shapes_csv.py                    # examples/data/shapes.csv, 100 images per class

Any CSV with a column of image paths (relative to the CSV) and one of class names works the same way
with the example plugin's csv_images data set.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image

from gan_bench.config import DataConfig
from gan_bench.data import load_data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("examples/data"), help="folder for shapes.csv and the PNGs")
    p.add_argument("--per-class", type=int, default=100, help="images per class (10 classes)")
    a = p.parse_args()
    splits = load_data(DataConfig(name="shapes", per_class=a.per_class, test_fraction=0.0))
    data = splits.train
    rows = []
    for i, (x, y) in enumerate(zip(data.x, data.y)):
        name = data.classes[int(y)]
        file = Path("shapes") / name / f"{i:05d}.png"
        (a.out / file).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(x[0])).save(a.out / file)  # (28, 28) grey
        rows.append({"path": file.as_posix(), "label": name})
    with open(a.out / "shapes.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label"])
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} images and {a.out / 'shapes.csv'}")


if __name__ == "__main__":
    main()

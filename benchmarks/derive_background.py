"""Derive the simulator's legitimate-background table from the Olist public data set.

Run once by a developer (the product never reads ../shared at run time):
    python benchmarks/derive_background.py ../shared/data/olist streams/data/olist_background.json
It keeps, for the 16 most common product categories, a seeded sample of 150 real products
(weight in kg, box length/width/height in cm) and each category's share of all products.
"""

from __future__ import annotations

import csv
import json
import random
import sys
from collections import defaultdict
from pathlib import Path


def main(src: Path, out: Path) -> None:
    names = {}
    with (src / "product_category_name_translation.csv").open(encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            names[row["product_category_name"]] = row["product_category_name_english"]
    by_category: dict[str, list[list[float]]] = defaultdict(list)
    with (src / "olist_products_dataset.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                dims = [
                    float(row[k])
                    for k in ("product_weight_g", "product_length_cm", "product_width_cm", "product_height_cm")
                ]
            except ValueError:
                continue
            if min(dims) <= 0:
                continue
            category = names.get(row["product_category_name"], row["product_category_name"] or "other")
            by_category[category].append([round(dims[0] / 1000, 3), dims[1], dims[2], dims[3]])
    total = sum(len(v) for v in by_category.values())
    top = sorted(by_category, key=lambda c: -len(by_category[c]))[:16]
    rng = random.Random(20261123)
    table = {
        "source": "Olist public e-commerce data set (olist_products_dataset.csv, MIT licence), via "
        "benchmarks/derive_background.py",
        "products_read": total,
        "categories": {
            c: {"share": round(len(by_category[c]) / total, 4), "products": rng.sample(by_category[c], 150)}
            for c in top
        },
    }
    out.write_text(json.dumps(table, separators=(",", ":")), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

"""Quality and speed of the default ML pipeline on the corpus, against tests/media/ML-TRUTH.tsv.

    python bench/ml_quality.py [--threads N] [--only SUBSTRING] [--ocr-only] [--words]

Runs the built-in models (the processors themselves, on the same decoded pictures the workers
get) on every photo and RAW file of the truth file, and prints per file and in total:
- OCR: recall of the legible words (each truth word, case-insensitive, punctuation stripped, as a
  multiset) and the words read that are not in the truth ("extra"); aims: recall >= 0.9;
- faces: found vs visible (the truth's count; a found face beyond it is a false face); aims:
  recall >= 0.9, false faces <= 1 over the corpus;
- people: every face found clustered as the `people` projection does (same order, same
  threshold); pairs of faces of one person grouped together, and of different people kept
  apart (who is who: the truth notes, listed in SAME_PERSON below);
- labels: a listed subject among the top-5 labels (aim >= 0.7 of photos with subjects), when a
  label model is installed (the [ml] extra); otherwise said so;
- species (label-classes, the default without CLIP): each live animal of the truth (cat, dog,
  bird, butterfly, bee) found among the top-3 approximate species, as that species or within its
  taxon (a bird anywhere in Aves, a butterfly in Lepidoptera);
- speed: ms per image for OCR and faces, and photos/s of the default pipeline (metadata +
  thumbnails + OCR + faces) against metadata + thumbnails alone, in this one process.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from infra.media_types import sniff_file  # noqa: E402
from processors.base import JobInput  # noqa: E402
from processors.ml import face_builtin, ppocr  # noqa: E402
from processors.ml.images import job_images  # noqa: E402
from projections.people import threshold_for  # noqa: E402

MEDIA = Path(__file__).resolve().parents[1] / "tests" / "media"
# The faces of one person in the truth (file, index of the face found, best first): the man in
# the train and his reflection.
SAME_PERSON = {"photo/samsung_gt-i9000_zero_gps_orient6.jpg"}


def words(text: str) -> list[str]:
    return [w for w in (re.sub(r"[^\w]", "", t, flags=re.UNICODE).lower() for t in text.split()) if w]


def truth_rows() -> list[dict[str, str]]:
    with open(MEDIA / "ML-TRUTH.tsv", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f, delimiter="\t") if r["faces"].strip()]


def job_for(path: Path, scratch: Path) -> JobInput:
    media = sniff_file(str(path), path.name)
    mime = media.mime_type if media else "application/octet-stream"
    kind = "PHOTO" if mime.startswith("image/") or "raw" in mime.lower() else (media.asset_type if media else "PHOTO")
    return JobInput(1, "bench", kind, mime, path, path.name, scratch / path.stem, scratch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--only", default="", help="only files whose path contains this")
    parser.add_argument("--ocr-only", action="store_true",
                        help="OCR alone: no metadata, thumbnails, faces, people or labels (quick)")
    parser.add_argument("--words", action="store_true", help="list each file's missed and extra words")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="ml-quality-"))
    rows = [r for r in truth_rows() if args.only in r["path"]]
    totals: Counter[str] = Counter()
    ocr_ms: list[float] = []
    face_ms: list[float] = []
    base_s = full_s = 0.0
    faces_found: list[tuple[str, int, np.ndarray]] = []
    from processors.metadata import extract_metadata
    from processors.thumbnails import make_thumbnails

    print(f"{'file':52} {'ocr recall':>10} {'extra':>5} {'faces':>7} {'false':>5}  ms ocr/faces")
    for row in rows:
        path = MEDIA / row["path"]
        job = job_for(path, scratch)
        start = time.perf_counter()
        if not args.ocr_only:
            try:
                extract_metadata(job)
                job.derived_dir.mkdir(parents=True, exist_ok=True)
                make_thumbnails(job)
            except Exception as exc:  # a file the core pipeline refuses is not an ML question
                print(f"{row['path']:52} core pipeline failed: {str(exc)[:60]}")
                continue
        base = time.perf_counter() - start
        try:
            image = np.asarray(job_images(job, frames=1, longest=ppocr.DETECT_LONGEST)[0])
        except Exception as exc:
            print(f"{row['path']:52} no picture: {str(exc)[:60]}")
            continue
        t0 = time.perf_counter()
        lines = ppocr.read_image(image, args.threads)
        t1 = time.perf_counter()
        if args.ocr_only:
            faces, t2, t3 = [], t1, t1
        else:
            face_image = np.asarray(job_images(job, frames=1, longest=face_builtin.DETECT_LONGEST)[0])
            t2 = time.perf_counter()
            faces = face_builtin.find_faces(face_image)
            t3 = time.perf_counter()
        ocr_ms.append((t1 - t0) * 1000)
        face_ms.append((t3 - t2) * 1000)
        base_s += base
        full_s += base + (t3 - t0)

        truth_words = Counter(words(row["text"].replace("|", " ")))
        read = Counter(words(" ".join(line["text"] for line in lines)))
        hit = sum(min(n, read[w]) for w, n in truth_words.items())
        extra = sum(n for w, n in read.items() if w not in truth_words)
        expected = int(re.match(r"\d+", row["faces"].strip()).group(0)) if re.match(r"\d+", row["faces"].strip()) else 0
        if row["path"] in SAME_PERSON:
            expected = 2  # the reflection is a visible face of the same man
        found = len(faces)
        totals["words"] += sum(truth_words.values())
        totals["words_hit"] += hit
        totals["words_extra"] += extra
        totals["faces"] += expected
        totals["faces_hit"] += min(found, expected)
        totals["false_faces"] += max(0, found - expected)
        for i, face in enumerate(faces):
            faces_found.append((row["path"], i, np.asarray(face["embedding"])))
        recall = f"{hit / sum(truth_words.values()):.2f}" if truth_words else "-"
        print(f"{row['path']:52} {recall:>10} {extra:>5} {found:>3}/{expected:<3} {max(0, found - expected):>5}"
              f"  {ocr_ms[-1]:.0f}/{face_ms[-1]:.0f}")
        if args.words:
            missed = sorted((truth_words - read).elements())
            extras = sorted(w for w, n in read.items() if w not in truth_words for _ in range(n))
            if missed or extras:
                print(f"    missed: {' '.join(missed) or '-'}; extra: {' '.join(extras) or '-'}")

    print()
    print(f"OCR word recall: {totals['words_hit']}/{totals['words']} = "
          f"{totals['words_hit'] / max(1, totals['words']):.3f} (aim >= 0.9); words read that are not there: "
          f"{totals['words_extra']}")
    if not args.ocr_only:
        print(f"face recall: {totals['faces_hit']}/{totals['faces']} = {totals['faces_hit'] / max(1, totals['faces']):.3f} "
              f"(aim >= 0.9); false faces: {totals['false_faces']} (aim <= 1)")
        people = cluster(faces_found)
        same = [(a, b) for a in range(len(faces_found)) for b in range(a + 1, len(faces_found))
                if faces_found[a][0] == faces_found[b][0] and faces_found[a][0] in SAME_PERSON]
        apart = [(a, b) for a in range(len(faces_found)) for b in range(a + 1, len(faces_found))
                 if faces_found[a][0] != faces_found[b][0]]
        print(f"people: {len(set(people))} from {len(faces_found)} faces; same person grouped: "
              f"{sum(people[a] == people[b] for a, b in same)}/{len(same)}; different people apart: "
              f"{sum(people[a] != people[b] for a, b in apart)}/{len(apart)}")
        labels_report(rows)
    n = len(ocr_ms)
    if n:
        print(f"speed ({n} images, {args.threads} threads): OCR {np.mean(ocr_ms):.0f} ms/image "
              f"(median {np.median(ocr_ms):.0f})" + ("" if args.ocr_only else
              f", faces {np.mean(face_ms):.0f} ms/image (median {np.median(face_ms):.0f})"))
    if n and not args.ocr_only:
        print(f"pipeline: metadata+thumbnails {n / base_s:.2f} photos/s; + OCR + faces {n / full_s:.2f} photos/s "
              f"(ratio {base_s / full_s:.2f})")


def cluster(faces: list[tuple[str, int, np.ndarray]]) -> list[int]:
    """Person index per face: the people projection's rule (nearest centre by cosine, at least
    the model's threshold, else a new person), in this order."""
    threshold = threshold_for(face_builtin.MODEL_ID)
    sums: list[np.ndarray] = []
    out = []
    for _, _, vector in faces:
        v = vector / (np.linalg.norm(vector) or 1.0)
        best, best_sim = -1, threshold
        for i, total in enumerate(sums):
            sim = float(total @ v) / (np.linalg.norm(total) or 1.0)
            if sim >= best_sim:
                best, best_sim = i, sim
        if best < 0:
            sums.append(v.copy())
            best = len(sums) - 1
        else:
            sums[best] = sums[best] + v
        out.append(best)
    return out


# The truth's animal words as the taxon a prediction must name (species, or a rank of its taxonomy).
TAXON_OF_ANIMAL = {"cat": "Felis catus", "dog": "Canis lupus familiaris", "bird": "Aves", "birds": "Aves",
                   "butterfly": "Lepidoptera", "honeybee": "Hymenoptera", "bee": "Hymenoptera"}


def live_animals(row: dict[str, str]) -> list[str]:
    """The truth's animals of a photo, as taxa; models and sculptures (in brackets) are not live."""
    found = []
    for part in row["animals"].split(";"):
        part = part.strip()
        if part and not part.startswith("("):
            word = part.split()[0].lower().strip(",")
            if word in TAXON_OF_ANIMAL:
                found.append(TAXON_OF_ANIMAL[word])
    return found


def labels_report(rows: list[dict[str, str]]) -> None:
    try:
        from processors.ml import labels
    except ImportError:
        print("labels: no label model in this install (processors.ml.labels needs the [ml] extra)")
        return
    if not labels.available():
        print(f"labels: {labels.unavailable_reason()}")
        return
    scratch = Path(tempfile.mkdtemp(prefix="ml-labels-"))
    hits = total = 0
    species_hits = species_total = 0
    for row in rows:
        subjects = [s.strip().lower() for s in row["labels"].split(";") if s.strip()]
        animals = live_animals(row)
        if not subjects and not animals:
            continue
        job = job_for(MEDIA / row["path"], scratch)
        try:
            image = job_images(job, frames=1)[0]
        except Exception:
            continue
        if animals:
            from processors.ml.label_species import species_of_classes

            probs, names = labels.probabilities(image)
            species = species_of_classes(probs, names, 3)
            taxa = [{p["scientific_name"], *p["taxonomy"].values()} for p in species]
            found = [any(animal in t for t in taxa) for animal in animals]
            species_hits += sum(found)
            species_total += len(animals)
            print(f"  species {row['path']:47} {sum(found)}/{len(animals)} "
                  f"{', '.join(p['label'] + ' ' + str(round(p['score'], 2)) for p in species) or '(none)'}")
        if not subjects:
            continue
        top = labels.top_labels(image, 5)
        names = " ".join(t["label"].lower() for t in top)
        ok = any(any(word in names for word in s.split()) for s in subjects)
        hits += ok
        total += 1
        print(f"  labels {row['path']:48} {'HIT ' if ok else 'miss'} {', '.join(t['label'] for t in top)}")
    print(f"labels: a listed subject among the top 5 in {hits}/{total} = {hits / max(1, total):.3f} (aim >= 0.7)")
    print(f"species (label-classes): a live animal of the truth among the top 3 in "
          f"{species_hits}/{species_total} = {species_hits / max(1, species_total):.3f}")


if __name__ == "__main__":
    main()

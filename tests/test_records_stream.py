"""The streamed CSVs of ``keep_records=False`` (:class:`fastraster.io.records.CsvStream`)
against the in-memory writer of ``keep_records=True`` (:func:`write_summary`, a set of the
paths): the same summary, row for row and in order, on a resume whose earlier summary lacks
rows of skipped outputs, holds rows of outputs not in the run and rows of redone ones —
with the merge's chunks of 1, 2 and 3 rows, so every chunk boundary is crossed."""

import csv
import shutil

import pytest

import fastraster
from fastraster.io import records


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def _relative(rows, root):
    return [[v.replace(str(root), "<out>") for v in row] for row in rows]


@pytest.fixture(scope="module")
def first_run(sample_staged, tmp_path_factory):
    out = tmp_path_factory.mktemp("stream") / "out"
    fastraster.rasterize_dir(sample_staged, out, progress=False)
    return out


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_streamed_summary_equals_the_in_memory_one(first_run, sample_staged, tmp_path,
                                                    monkeypatch, chunk):
    summary = _rows(first_run / records.SUMMARY_CSV)
    header, body = summary[0], summary[1:]
    path = header.index("path")
    outputs = sorted({row[path] for row in body})
    assert len(outputs) == 2 and len(body) == 4
    # An earlier summary: the first output's rows lost (a killed run), a row of an output
    # this run does not have, and the second output's rows present.
    foreign = list(body[-1])
    foreign[path] = foreign[path].replace(".tif", "-other.tif")
    edited = [header] + [r for r in body if r[path] != outputs[0]] + [foreign]
    results = {}
    for keep in (True, False):
        out = tmp_path / f"keep-{keep}"
        shutil.copytree(first_run, out)
        with open(out / records.SUMMARY_CSV, "w", newline="") as fh:
            csv.writer(fh).writerows(_relative(edited, first_run))
        rows = _rows(out / records.SUMMARY_CSV)
        with open(out / records.SUMMARY_CSV, "w", newline="") as fh:
            csv.writer(fh).writerows([[v.replace("<out>", str(out)) for v in r] for r in rows])
        # the second output redone, the first skipped (its rows read back from the file)
        (out / outputs[1].replace(str(first_run) + "/", "")).unlink()
        monkeypatch.setattr(records, "_CHUNK_ROWS", chunk)
        report = fastraster.rasterize_dir(sample_staged, out, progress=False, keep_records=keep)
        assert (report.n("skipped"), report.n("ok")) == (1, 1)
        results[keep] = _relative(_rows(out / records.SUMMARY_CSV), out)
        assert not [p for p in out.iterdir() if p.name.startswith(".")]  # parts removed
    assert results[False] == results[True]
    got = {row[path] for row in results[False][1:]}
    assert len(results[False]) == 1 + 5 and len(got) == 3  # both outputs, and the foreign one
    assert sorted(results[False][1:]) == sorted(
        _relative(body, first_run) + [_relative([foreign], first_run)[0]])


def test_digest_membership():
    digests = records._digests(f"/o/{i}.tif" for i in range(100))
    have = records._sorted_digests(f"/o/{i}.tif" for i in range(0, 100, 3))
    assert records._isin(digests, have).tolist() == [i % 3 == 0 for i in range(100)]
    assert not records._isin(digests, records._sorted_digests([])).any()

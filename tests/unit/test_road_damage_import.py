"""road_damage importers (mask and class-folder datasets) and the corrections export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from models.road_damage.corrections import corrected_labels, corrections_frames
from models.road_damage.importers import crack_class, import_folders, import_masks, import_voc
from models.road_damage.labels import CLASSES
from models.road_damage.photo import Grid
from models.road_damage.schema import validate


def _photo(path: Path, size: tuple[int, int] = (256, 192)) -> None:
    rng = np.random.default_rng(len(str(path)))
    Image.fromarray(rng.integers(90, 140, (size[1], size[0], 3), np.uint8)).save(path)


def test_mask_dataset_becomes_photos_and_tiles(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "gt").mkdir()
    _photo(tmp_path / "img" / "a.jpg")
    _photo(tmp_path / "img" / "b.jpg")
    mask = np.zeros((192, 256), np.uint8)
    mask[10:60, 20:22] = 255  # a vertical crack in the top-left tile of a 4 x 3 grid
    Image.fromarray(mask).save(tmp_path / "gt" / "a.png")
    Image.fromarray(np.zeros((96, 128), np.uint8)).save(tmp_path / "gt" / "b.bmp")  # resized
    frames = import_masks(tmp_path / "img", tmp_path / "gt", "121002", Grid(256, 64))
    photos, tiles = validate("photos", frames["photos"]), validate("tiles", frames["tiles"])
    assert list(photos["photo_id"]) == ["121002-a", "121002-b"]
    assert (photos[["rows", "cols"]].to_numpy() == [3, 4]).all()
    a = tiles[tiles.photo_id == "121002-a"].sort_values(["row", "col"])
    assert a.iloc[0][list(CLASSES)].tolist() == [0, 1, 0, 0, 0]  # D00 from its shape
    assert a.iloc[1:]["none"].eq(1).all()
    assert photos.iloc[0]["crack_ratio"] == round(1 / 12, 4) and photos.iloc[1]["crack_ratio"] == 0
    assert set(frames.files) == {"images/121002/121002-a.jpg", "images/121002/121002-b.jpg",
                                 "masks/121002/121002-a.png", "masks/121002/121002-b.png"}


def test_missing_mask_is_named(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "gt").mkdir()
    _photo(tmp_path / "img" / "lonely.jpg")
    with pytest.raises(ValueError, match=r"lonely\.jpg: no mask"):
        import_masks(tmp_path / "img", tmp_path / "gt", "121002", Grid(256, 64))


def test_crack_class_from_shape() -> None:
    ys = np.arange(40)
    assert crack_class(ys, np.full(40, 5)) == "D00"
    assert crack_class(np.full(40, 5), ys) == "D10"
    grid_y, grid_x = np.nonzero(np.ones((20, 20)))
    assert crack_class(grid_y, grid_x) == "D20"


def test_class_folders_are_one_tile_each(tmp_path: Path) -> None:
    for cls in ("Negative", "Positive"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            _photo(tmp_path / cls / f"{i}.jpg", (227, 227))
    frames = import_folders(tmp_path, "012050")
    tiles = validate("tiles", frames["tiles"])
    assert len(tiles) == 4 and tiles["none"].sum() == 2 and tiles["D00"].sum() == 2
    (tmp_path / "weird").mkdir()
    with pytest.raises(ValueError, match="weird: unknown class folder"):
        import_folders(tmp_path, "012050")


def test_corrections_override_the_model_labels() -> None:
    cell = {"labels": ["none"]}
    result = {"rows": 2, "cols": 2, "grid": [[cell, {"labels": ["D20"]}], [cell, cell]],
              "lat": None, "lon": None, "taken_at": None}
    labels = corrected_labels(result, [(1, 0, False, ["D00"]), (0, 1, True, [])])
    assert labels[:, 0].tolist() == [1, 0, 0, 1]
    assert labels[2, CLASSES.index("D00")] == 1 and labels[1, CLASSES.index("D20")] == 1
    cleared = corrected_labels(result, [(None, None, False, ["none"])])
    assert cleared[:, 0].all()
    frames = corrections_frames([{"tenant": "121002", "batch_id": "b1", "index": 0,
                                  "name": "x.jpg", "result": result, "image": b"jpeg",
                                  "corrections": [(1, 0, False, ["D00"])]}])["121002"]
    validate("photos", frames["photos"])
    validate("tiles", frames["tiles"])
    assert frames["photos"].iloc[0]["crack_ratio"] == 0.5


def test_cli_imports_a_mask_dataset_into_the_workspace(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from training.cli import app
    from training.sandbox import make_workspace

    root = make_workspace(tmp_path / "ws", "road_damage", {"grid": {"long_side": 256}})
    (tmp_path / "img").mkdir()
    (tmp_path / "gt").mkdir()
    _photo(tmp_path / "img" / "a.jpg")
    Image.fromarray(np.zeros((192, 256), np.uint8)).save(tmp_path / "gt" / "a.png")
    monkeypatch.setenv("KYODO_ROOT", str(root))
    result = CliRunner().invoke(app, ["road", "import", "masks", str(tmp_path / "img"),
                                      str(tmp_path / "gt"), "--tenant", "012050"])
    assert result.exit_code == 0, result.output
    assert (root / "data" / "road_damage" / "012050.csv").is_file()
    assert (root / "data" / "road_damage" / "images" / "012050" / "012050-a.jpg").is_file()
    _photo(tmp_path / "img" / "b.jpg")
    Image.fromarray(np.zeros((192, 256), np.uint8)).save(tmp_path / "gt" / "b.png")
    again = CliRunner().invoke(app, ["road", "import", "masks", str(tmp_path / "img"),
                                     str(tmp_path / "gt"), "--tenant", "012050", "--append"])
    assert again.exit_code == 0, again.output
    photos = (root / "data" / "road_damage" / "012050.csv").read_text().splitlines()
    assert len(photos) == 3  # header, a (replaced, not doubled) and b
    from training.data import read_frame
    from training.workspace import Workspace

    ws = Workspace.load(root)
    tiles = read_frame(ws, ws.task("road_damage"), "tiles", "012050")  # validates
    assert len(tiles) == 2 * 12
    bad = CliRunner().invoke(app, ["road", "import", "masks", str(tmp_path / "img"),
                                   str(tmp_path / "gt"), "--tenant", "402303"])
    assert bad.exit_code == 2 and "does not subscribe" in bad.output


def test_cli_import_never_replaces_a_tenants_photos_unasked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from training.cli import app
    from training.sandbox import make_workspace

    root = make_workspace(tmp_path / "ws", "road_damage", {"grid": {"long_side": 256}})
    monkeypatch.setenv("KYODO_ROOT", str(root))
    for d in ("img", "gt"):
        (tmp_path / d).mkdir()
    for name in ("a", "b"):
        _photo(tmp_path / "img" / f"{name}.jpg")
        Image.fromarray(np.zeros((192, 256), np.uint8)).save(tmp_path / "gt" / f"{name}.png")

    def run(*extra: str, images: str = "img", code: str = "012050") -> Any:
        return CliRunner().invoke(app, ["road", "import", "masks", str(tmp_path / images),
                                        str(tmp_path / "gt"), "--tenant", code, *extra])

    photos = root / "data" / "road_damage" / "012050.csv"
    assert run().exit_code == 0 and len(photos.read_text().splitlines()) == 3
    (tmp_path / "one").mkdir()
    _photo(tmp_path / "one" / "a.jpg")
    unasked = run(images="one")  # would drop b silently
    assert unasked.exit_code == 2 and "already has 2 photos" in unasked.output
    assert "--append" in unasked.output and "--replace" in unasked.output
    assert len(photos.read_text().splitlines()) == 3  # untouched
    assert run("--append", "--replace").exit_code == 2
    images = root / "data" / "road_damage" / "images" / "012050"
    assert {p.name for p in images.iterdir()} == {"012050-a.jpg", "012050-b.jpg"}
    assert run("--replace", images="one").exit_code == 0
    assert len(photos.read_text().splitlines()) == 2  # header and a
    assert {p.name for p in images.iterdir()} == {"012050-a.jpg"}  # b's file went with its row
    unknown = run(code="999999")
    assert unknown.exit_code == 2 and "no municipality with this code" in unknown.output
    missing = run(images="nowhere")
    assert missing.exit_code == 2 and "nowhere" in missing.output and "not exist" in missing.output


def test_mask_import_lists_every_bad_pair_and_imports_none(tmp_path: Path) -> None:
    for d in ("img", "gt"):
        (tmp_path / d).mkdir()
    for name in ("a", "b", "c", "d"):
        _photo(tmp_path / "img" / f"{name}.jpg")  # 256 x 192
    Image.fromarray(np.zeros((96, 128), np.uint8)).save(tmp_path / "gt" / "a.png")  # scaled: ok
    Image.fromarray(np.zeros((256, 192), np.uint8)).save(tmp_path / "gt" / "b.png")  # turned
    (tmp_path / "gt" / "c.png").write_bytes(b"not a png")
    with pytest.raises(ValueError) as err:  # d has no mask at all
        import_masks(tmp_path / "img", tmp_path / "gt", "012050", Grid(256, 64))
    text = str(err.value)
    assert text.startswith("3 problem(s), nothing imported")
    assert "b.png: mask is 192 x 256 pixels but its photo b.jpg is 256 x 192" in text
    assert "c.png: the mask of c.jpg is not a readable image" in text
    assert "d.jpg: no mask with the same name" in text and "a.jpg" not in text


def _voc(path: Path, boxes: list[tuple[str, tuple[int, int, int, int]]],
         size: tuple[int, int] = (256, 192)) -> None:
    objects = "".join(
        f"<object><name>{name}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
        f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for name, (x0, y0, x1, y1) in boxes)
    path.write_text(f"<annotation><filename>{path.stem}.jpg</filename><size><width>{size[0]}"
                    f"</width><height>{size[1]}</height><depth>3</depth></size>{objects}"
                    "</annotation>")


def test_voc_boxes_become_tile_labels(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "xml").mkdir()
    for name in ("a", "b", "c"):
        _photo(tmp_path / "img" / f"{name}.jpg")
    # a: a transverse crack box over the top row's first two tiles, a pothole in the last tile,
    # a box clipping 4 px of the next tile (under 10%: not labelled), and a manhole (no damage)
    _voc(tmp_path / "xml" / "a.xml", [("D10", (0, 10, 132, 40)), ("D40", (200, 140, 250, 190)),
                                      ("D50", (70, 70, 120, 120))])
    _voc(tmp_path / "xml" / "b.xml", [("D01", (10, 0, 60, 100))], size=(512, 384))  # scaled
    frames = import_voc(tmp_path / "img", tmp_path / "xml", "121002", Grid(256, 64))
    tiles = validate("tiles", frames["tiles"]).set_index(["photo_id", "row", "col"])
    validate("photos", frames["photos"])
    a = tiles.loc["121002-a"]
    assert a.loc[(0, 0), list(CLASSES)].tolist() == [0, 0, 1, 0, 0]
    assert a.loc[(0, 1), "D10"] == 1 and a.loc[(0, 2), "none"] == 1  # 4 px of 64: too little
    assert a.loc[(2, 3), list(CLASSES)].tolist() == [0, 0, 0, 0, 1]
    assert a.loc[(1, 1), "none"] == 1  # the manhole box is not damage
    b = tiles.loc["121002-b"]
    assert b.loc[(0, 0), "D00"] == 1 and b["none"].sum() == 11  # D01 -> D00, box halved
    assert tiles.loc["121002-c"]["none"].all()  # no XML: a negative photo


@pytest.mark.parametrize(("xml", "message"), [
    ("<annotation><object><name>D00</name></object></annotation>", r"a\.xml: object 1 .*bndbox"),
    ("<annotation><object><name>D99</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax>"
     "<ymax>9</ymax></bndbox></object></annotation>", r"a\.xml: unknown damage class 'D99'"),
    ("<annotation><object><name>D00</name><bndbox><xmin>9</xmin><ymin>1</ymin><xmax>2</xmax>"
     "<ymax>9</ymax></bndbox></object></annotation>", r"a\.xml: object 1 \(D00\) has an empty"),
    ("not xml at all", r"a\.xml: not a Pascal VOC XML file"),
])
def test_bad_voc_files_are_named(tmp_path: Path, xml: str, message: str) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "xml").mkdir()
    _photo(tmp_path / "img" / "a.jpg")
    (tmp_path / "xml" / "a.xml").write_text(xml)
    with pytest.raises(ValueError, match=message):
        import_voc(tmp_path / "img", tmp_path / "xml", "121002", Grid(256, 64))


def test_cli_imports_a_voc_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from training.cli import app
    from training.sandbox import make_workspace

    root = make_workspace(tmp_path / "ws", "road_damage", {"grid": {"long_side": 256}})
    (tmp_path / "img").mkdir()
    (tmp_path / "xml").mkdir()
    _photo(tmp_path / "img" / "a.jpg")
    _voc(tmp_path / "xml" / "a.xml", [("D20", (0, 0, 128, 128))])
    monkeypatch.setenv("KYODO_ROOT", str(root))
    result = CliRunner().invoke(app, ["road", "import", "voc", str(tmp_path / "img"),
                                      str(tmp_path / "xml"), "--tenant", "121002"])
    assert result.exit_code == 0, result.output
    assert "1 photos, 12 tiles (4 damaged)" in result.output
    _voc(tmp_path / "xml" / "a.xml", [("D77", (0, 0, 128, 128))])
    bad = CliRunner().invoke(app, ["road", "import", "voc", str(tmp_path / "img"),
                                   str(tmp_path / "xml"), "--tenant", "121002", "--append"])
    assert bad.exit_code == 2 and "a.xml: unknown damage class 'D77'" in bad.output

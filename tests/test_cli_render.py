"""`anomaly-chat render`: writes the view, exit 2 on bad input, --class fixes a camera."""

from __future__ import annotations

import numpy as np
from PIL import Image

from assistant.cli import main
from tests.helpers import data


def test_render_writes_the_default_view(tmp_path, home, capsys):
    cloud = data.write_cloud(data.surface_grid(48, 48, defect="bump"), tmp_path / "scan.tiff")
    out = tmp_path / "out" / "scan.png"
    assert main(["render", str(cloud), "-o", str(out)]) == 0
    assert Image.open(out).size == (512, 512) and "point cloud" in capsys.readouterr().out


def test_render_with_a_class_uses_the_camera_its_reference_scans_fixed(tmp_path, home):
    cloud = data.write_cloud(data.surface_points(3000), tmp_path / "scan.ply")
    assert main(["render", str(cloud), "-o", str(tmp_path / "d.png"), "--view", "depth", "--class", "Metal Nut"]) == 0
    assert not (home / "cache" / "cameras" / "metal_nut.json").exists()  # a scan to look at fixes nothing
    reference = data.write_cloud(data.surface_points(3000, seed=1), tmp_path / "good.ply")
    assert main(["render", str(cloud), "-o", str(tmp_path / "d.png"), "--class", "Metal Nut", "--ref", str(reference)]) == 0
    assert (home / "cache" / "cameras" / "metal_nut.json").exists()


def test_render_with_reference_scans_colours_the_deviation(tmp_path, home, capsys):
    references = [data.write_cloud(data.surface_grid(64, 64, seed=i), tmp_path / f"good{i}.tiff") for i in range(2)]
    dented = data.write_cloud(data.surface_grid(64, 64, defect="dent", amplitude=0.004, seed=5), tmp_path / "q.tiff")
    out = tmp_path / "q.png"
    assert main(["render", str(dented), "-o", str(out), "--ref", *map(str, references)]) == 0
    assert "3-D expert: anomaly score" in capsys.readouterr().out
    pixels = np.asarray(Image.open(out), int)
    assert Image.open(out).height > 512  # the colour legend under the render
    assert ((pixels[:, :, 2] > pixels[:, :, 0] + 60) | (pixels[:, :, 0] > pixels[:, :, 2] + 60))[:512].any()


def test_bad_input_exits_2_with_one_line(tmp_path, home, capsys):
    (tmp_path / "broken.ply").write_text("not a cloud\n")
    assert main(["render", str(tmp_path / "broken.ply"), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("anomaly-chat: error: broken.ply:") and "\n" not in err


def test_view_that_does_not_fit_the_kind_exits_2(tmp_path, home, capsys):
    series = data.write_series(data.series_frame(50), tmp_path / "s.csv")
    assert main(["render", str(series), "-o", str(tmp_path / "x.png"), "--view", "shaded"]) == 2
    assert "use one of: plot" in capsys.readouterr().err


def test_output_needs_an_image_extension(tmp_path, home, capsys):
    image = data.write_image(data.part_image((32, 32)), tmp_path / "a.png")
    assert main(["render", str(image), "-o", str(tmp_path / "out.txt")]) == 2
    assert "image extension" in capsys.readouterr().err

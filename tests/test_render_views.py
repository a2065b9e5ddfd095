"""Views registry, to_image per kind with per-class cameras, and the agent tools over them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

import tools.agent.render_tools  # noqa: F401 - registers the tools
from tests.helpers import data
from tools.agent.registry import REGISTRY, call_tool
from tools.errors import InputError
from tools.inputs.artifacts import load
from tools.render.views import DEFAULT_VIEWS, VIEWS, reference_image, to_image, views_for


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uploads")
    frame = data.series_frame(800, columns=("temperature", "pressure"), spikes=((400, 3.0),))
    loaded = [load(data.write_image(data.part_image((96, 96), defect="spot"), folder / "part.png")),
              load(data.write_cloud(data.surface_grid(64, 64, defect="dent"), folder / "scan.tiff")),
              load(data.write_series(frame, folder / "line.csv")),
              load(data.write_video(folder / "clip.mp4", n=20, odd_frame=9))]
    return {a.kind: a for a in loaded}


@dataclass
class Session:
    artifacts: dict = field(default_factory=dict)
    kb: object = None
    author: str = "tester"
    can_edit_knowledge: bool = False


def test_registry_names_the_six_views_and_defaults_come_first():
    assert set(VIEWS) == {"image", "depth", "shaded", "views", "plot", "frames"}
    assert views_for("point_cloud") == ["shaded", "depth", "views"]
    assert views_for("series") == ["plot"] and views_for("video") == ["frames"]


@pytest.mark.parametrize("kind", ["image", "point_cloud", "series", "video"])
def test_every_kind_has_a_default_rgb_view(artifacts, kind):
    image = to_image(artifacts[kind])
    assert image.mode == "RGB" and min(image.size) > 50


def test_a_view_of_another_kind_is_refused_with_the_choices(artifacts):
    with pytest.raises(InputError, match="use one of: plot"):
        to_image(artifacts["series"], "depth")


def test_a_query_never_fixes_the_class_camera_its_references_do(artifacts, tmp_path):
    cloud = artifacts["point_cloud"]
    to_image(cloud, "depth", class_name="Cookie", cache_dir=tmp_path)
    assert not (tmp_path / "cameras" / "cookie.json").exists()
    reference_image(cloud, class_name="Cookie", cache_dir=tmp_path)
    assert (tmp_path / "cameras" / "cookie.json").exists()
    shifted = load(data.write_cloud(data.surface_grid(64, 64) + np.float32([0.03, 0, 0]), tmp_path / "moved.tiff"))
    with_class = np.asarray(to_image(shifted, "shaded", class_name="cookie", cache_dir=tmp_path))
    alone = np.asarray(to_image(shifted, "shaded"))
    assert not np.array_equal(with_class, alone)  # the class camera does not re-centre on the moved part
    reference_image(shifted, class_name="cookie", cache_dir=tmp_path)  # a later reference leaves it as it is
    assert np.array_equal(np.asarray(to_image(shifted, "shaded", class_name="cookie", cache_dir=tmp_path)), with_class)


def test_the_prompt_describes_the_view_that_is_sent():
    from assistant import prompts

    for kind, view in DEFAULT_VIEWS.items():
        assert prompts.WHAT[kind] == VIEWS[view].shows
    assert "shaded render of a 3-D scan" in prompts.WHAT["point_cloud"]


def test_tools_are_registered_with_documented_arguments():
    for name in ("render_point_cloud", "plot_series", "sample_video_frames", "zoom_region"):
        spec = REGISTRY[name].spec()
        assert "artifact_id" in spec["parameters"]["required"]
        assert all("description" in p for p in spec["parameters"]["properties"].values())
    assert REGISTRY["render_point_cloud"].parameters["properties"]["view"]["enum"] == ["shaded", "depth", "views"]


def test_render_point_cloud_tool_returns_an_image(artifacts):
    session = Session({a.id: a for a in artifacts.values()})
    result = call_tool("render_point_cloud", {"artifact_id": artifacts["point_cloud"].id, "view": "views"}, session)
    assert not result.error and len(result.images) == 1 and "views render" in result.text


def test_plot_series_tool_reports_the_spike(artifacts):
    series = artifacts["series"]
    result = call_tool("plot_series", {"artifact_id": series.id}, Session({series.id: series}))
    assert result.data["anomalous"] and "series expert (offline mode): anomalous" in result.text and result.images


def test_plot_series_tool_zooms_into_a_time_range(artifacts):
    series = artifacts["series"]
    start, end = str(series.payload.index[100]), str(series.payload.index[200])
    result = call_tool("plot_series", {"artifact_id": series.id, "start": start, "end": end,
                                       "columns": ["pressure"], "flag_anomalies": False}, Session({series.id: series}))
    assert not result.error and result.data == {}


def test_sample_video_frames_tool(artifacts):
    video = artifacts["video"]
    result = call_tool("sample_video_frames", {"artifact_id": video.id[:6], "count": 4}, Session({video.id: video}))
    assert not result.error and "4 frames" in result.text


def test_zoom_region_tool_and_its_errors(artifacts):
    image = artifacts["image"]
    session = Session({image.id: image})
    good = call_tool("zoom_region", {"artifact_id": image.id, "x0": 0.5, "y0": 0.2, "x1": 0.9, "y1": 0.6}, session)
    assert not good.error and good.images[0].size == (768, 768)
    bad_box = call_tool("zoom_region", {"artifact_id": image.id, "x0": 0.9, "y0": 0, "x1": 0.1, "y1": 1}, session)
    unknown = call_tool("zoom_region", {"artifact_id": "feedbeef", "x0": 0, "y0": 0, "x1": 1, "y1": 1}, session)
    assert bad_box.error and "box" in bad_box.text
    assert unknown.error and "known artifacts" in unknown.text


def test_tool_refuses_an_artifact_of_the_wrong_kind(artifacts):
    image = artifacts["image"]
    result = call_tool("render_point_cloud", {"artifact_id": image.id}, Session({image.id: image}))
    assert result.error and "is an image, not a point cloud" in result.text

"""`anomaly-chat render FILE -o OUT.png [--view NAME] [--class NAME]`: the 2-D view the model sees."""

from __future__ import annotations

from pathlib import Path

from tools.errors import InputError

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "render", help="render an image, point cloud, series or video to the image the model sees",
        description="Load FILE and write its 2-D view: the image itself, a point cloud render "
                    "(depth, shaded, views), a series plot or a video frame grid.")
    parser.add_argument("file", help="input file (image, point cloud, series or video)")
    parser.add_argument("-o", "--output", required=True, help="output image (.png or .jpg)")
    parser.add_argument("--view", help="depth | shaded | views (point clouds), plot (series), frames (video), "
                                       "image (images); default: the kind's usual view")
    parser.add_argument("--class", dest="class_name",
                        help="part class: point clouds use the camera fixed by that class's reference scans")
    parser.add_argument("--ref", nargs="+", default=[], metavar="FILE",
                        help="reference scans (point clouds): they fix the class's camera when it has none, and "
                             "the 3-D expert's deviation from them is shown in colour")
    parser.set_defaults(func=run)


def run(args) -> int:
    from assistant.commands.common import settings_from
    from tools.inputs.artifacts import Limits, load
    from tools.render.views import to_image

    output = Path(args.output)
    if output.suffix.lower() not in _IMAGE_SUFFIXES:
        raise InputError(f"output {output.name!r} needs an image extension: {', '.join(sorted(_IMAGE_SUFFIXES))}")
    settings = settings_from(args)
    limits = Limits(max_bytes=settings.max_upload_mb * 2**20, max_pixels=settings.max_image_pixels)
    artifact = load(args.file, limits=limits)
    references = [load(path, limits=limits) for path in args.ref]
    cache_dir = settings.cache_dir if args.class_name else None
    if references:
        _compare_scans(artifact, references, args.class_name, cache_dir)
    image = to_image(artifact, args.view, class_name=args.class_name, cache_dir=cache_dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        image.save(output)
    except OSError as exc:
        raise InputError(f"cannot write {output} ({exc}); check the folder and its permissions") from exc
    print(f"{output}: {image.width}x{image.height}, {artifact.describe()}")
    return 0


def _compare_scans(query, references, class_name, cache_dir) -> None:
    """Run the 3-D expert so that the render shows its deviation colours; print its finding."""
    from tools.experts.cloud.inspect import inspect_scan
    from tools.render.views import fix_class_camera

    if query.kind != "point_cloud" or any(r.kind != "point_cloud" for r in references):
        raise InputError("--ref compares point clouds: give a scan and reference scans")
    fix_class_camera(class_name, cache_dir, references)
    report, _ = inspect_scan(query, references, class_name=class_name, cache_dir=cache_dir)
    print(report.summary())

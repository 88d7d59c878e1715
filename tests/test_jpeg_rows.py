import io

import numpy as np
import pytest
from conftest import astronaut, encode
from PIL import Image

from edge_screen import decode as decode_module
from edge_screen import jpeg_rows
from edge_screen.decode import ImageLimits, decode_image
from edge_screen.probe import probe

# The transpose that stores an upright picture under an EXIF orientation.
_STORE = {
    1: None,
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}


def _jpeg(orientation: int = 1, **kw: object) -> bytes:
    upright = astronaut().resize((2400, 1800))
    method = _STORE[orientation]
    stored = upright if method is None else upright.transpose(method)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=90, exif=exif, **kw)


def test_top_rows_declares_the_rows_asked_for_rounded_up_to_an_mcu() -> None:
    data = _jpeg()
    top = jpeg_rows.top_rows(data, 100)
    assert top is not None and len(top) == len(data)
    with Image.open(io.BytesIO(top)) as im:
        assert im.size == (2400, 112)
        im.load()  # the rest of the scan is skipped, not an error
        full = np.asarray(Image.open(io.BytesIO(data)))
        assert np.array_equal(np.asarray(im)[:100], full[:100])


def test_top_rows_declines_what_it_cannot_shorten() -> None:
    data = _jpeg()
    assert jpeg_rows.top_rows(data, 1800) is None  # not fewer rows
    assert jpeg_rows.top_rows(data, 1785) is not None  # 1792 rows: still fewer
    assert jpeg_rows.top_rows(encode(astronaut(), "PNG"), 10) is None
    assert jpeg_rows.top_rows(b"\xff\xd8\xff\xda\x00\x02", 10) is None  # a scan before a frame
    at = data.index(b"\xff\xc0") + 5
    dnl = data[:at] + b"\x00\x00" + data[at + 2 :]  # height given by a DNL marker
    assert jpeg_rows.top_rows(dnl, 10) is None


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
@pytest.mark.parametrize("kw", [{"subsampling": 2}, {"subsampling": 0, "progressive": True}])
def test_detail_patches_are_the_pixels_of_a_full_decode(
    orientation: int, kw: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _jpeg(orientation, **kw)
    img = decode_image(data, probe(data[:64]), ImageLimits(), 300)
    assert img.detail is not None
    w, h = img.width, img.height
    boxes = [(w * 0.4, h * 0.1, w * 0.55, h * 0.3), (w * 0.05, h * 0.2, w * 0.3, h * 0.45)]
    opened: list[tuple[int, int]] = []
    real_open = decode_module.open_image

    def spy(data: bytes, found: object) -> Image.Image:
        im = real_open(data, found)  # type: ignore[arg-type]
        opened.append(im.size)
        return im

    monkeypatch.setattr(decode_module, "open_image", spy)
    for wanted in (1.0, 2.0):
        opened.clear()
        got = img.detail.patches(boxes, wanted)
        decoded = opened[-1]
        with monkeypatch.context() as m:
            m.setattr(jpeg_rows, "top_rows", lambda data, rows: None)
            full = img.detail.patches(boxes, wanted)
        for a, b in zip(got, full, strict=True):
            assert (a.x0, a.y0, a.scale) == (b.x0, b.y0, b.scale)
            assert np.array_equal(a.rgb, b.rgb)
        stored_h = opened[0][1]
        if orientation == 1:  # the faces are in the top half: so is what was decoded
            assert decoded[1] < stored_h * 0.6

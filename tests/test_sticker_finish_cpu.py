"""The runtime's finish step (cut-out, labelling, PNG) stays cheap on a 512 px sticker
(issue #16 §4: at most 50 ms of CPU; the Python-side labelling cost 0.2-0.7 s)."""

from PIL import Image

from benchmarks.sticker_cpu import plain_background_picture, sticker_cpu_ms


def test_a_512px_sticker_is_cut_out_and_encoded_in_well_under_a_tenth_of_a_second_of_cpu():
    figures = sticker_cpu_ms(repeats=3)
    # CPU time of this thread, so a busy machine does not inflate it; the margin over the
    # 50 ms target absorbs slower CPUs, and still fails the 200 ms of the old labelling.
    assert figures["sticker_cpu_ms"] < 120, figures


def test_the_measured_picture_is_really_cut_out():
    import io

    from seal_runtime.engine import finish_image

    sticker = Image.open(io.BytesIO(finish_image(plain_background_picture())))
    assert sticker.mode == "RGBA" and sticker.size[0] < 512  # trimmed to the character
    alpha = sticker.getchannel("A")
    assert alpha.getpixel((0, 0)) == 0 and alpha.getpixel((sticker.width // 2, sticker.height // 2)) == 255

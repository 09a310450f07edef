"""A local model's id comes from its configs and weights (issue #16 §6): two folders with the
same name but other weights get other ids (so they never share cached concepts), and the
same model in another folder keeps its id."""

from __future__ import annotations

import shutil

from seal_runtime.models.identity import identity_files, local_model_id


def test_the_id_follows_the_weights_not_the_folder_name(tmp_path, sd15_model_dir):
    first = shutil.copytree(sd15_model_dir, tmp_path / "a" / "sd15")
    same_elsewhere = shutil.copytree(sd15_model_dir, tmp_path / "b" / "my-model")
    replaced = shutil.copytree(sd15_model_dir, tmp_path / "c" / "sd15")
    weights = replaced / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one weight changed: another model
    weights.write_bytes(bytes(data))

    assert local_model_id(first) == local_model_id(same_elsewhere)
    assert local_model_id(first) != local_model_id(replaced)
    assert "sd15" not in local_model_id(first)

    scheduler = first / "scheduler" / "scheduler_config.json"
    scheduler.write_text(scheduler.read_text().replace('"steps_offset": 1', '"steps_offset": 0'))
    assert local_model_id(first) != local_model_id(same_elsewhere)  # configs count too


def test_hidden_files_and_notes_do_not_change_the_id(tmp_path, sd15_model_dir):
    folder = shutil.copytree(sd15_model_dir, tmp_path / "sd15")
    before = local_model_id(folder)
    (folder / "README.md").write_text("downloaded on Monday")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "lock.json").write_text("{}")
    assert local_model_id(folder) == before
    names = {path.name for path in identity_files(folder)}
    assert {"model_index.json", "config.json", "vocab.json", "merges.txt",
            "diffusion_pytorch_model.safetensors", "model.safetensors"} <= names

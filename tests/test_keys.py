"""One key derivation for every cache and resumable run (kdistill/keys.py)."""

import dataclasses

import numpy as np

from kdistill import config, keys


def test_parts_are_delimited_and_typed():
    assert keys.of("ab", "c") != keys.of("a", "bc")
    assert keys.of(["a", "b"]) != keys.of(["ab"])
    assert keys.of(np.zeros(2, np.float32)) != keys.of(np.zeros(2, np.float64))  # bytes, not values
    assert keys.of("x") == keys.of("x") and len(keys.of("x")) == keys.LENGTH
    streamed = keys.Digest().update(b"ab").update(["t1", "t2"]).hexdigest()
    assert streamed == keys.of(b"ab", ["t1", "t2"])


def test_every_config_field_is_part_of_the_key_with_nothing_to_list():
    """A field added to a config changes the keys of every cache it feeds, without anyone listing it."""
    for config_class in (config.TeacherConfig, config.StudentConfig, config.DistillConfig):
        default = config_class()
        for field in dataclasses.fields(config_class):
            value = getattr(default, field.name)
            if isinstance(value, bool):
                changed = not value
            elif isinstance(value, (int, float)):
                changed = value + 1
            elif isinstance(value, tuple):
                changed = value + value[:1]
            elif field.metadata.get("choices"):
                changed = next(choice for choice in field.metadata["choices"] if choice != value)
            else:
                changed = "12345" if value == config.AUTO else value + "_other"
            assert keys.of(dataclasses.replace(default, **{field.name: changed})) != keys.of(default), field.name


def test_an_option_added_later_enters_keys_only_when_set():
    """`length_buckets` came after hours of keyed benchmark cells: off (as before it) it leaves their keys as they
    were; on, it makes new ones."""
    base = config.DistillConfig()
    before_it = {name: value for name, value in dataclasses.asdict(base).items() if name != "length_buckets"}
    assert not base.length_buckets and keys.of(base) == keys.of(before_it)
    assert keys.of(dataclasses.replace(base, length_buckets=True)) != keys.of(base)
    assert keys.of(dataclasses.replace(base, epochs=5)) != keys.of(base)  # any other field, always

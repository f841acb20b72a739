import tomllib
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def test_the_declared_license_file_exists_and_is_the_declared_license():
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    text = (REPOSITORY / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text


def test_the_demo_extra_is_part_of_all():
    extras = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(requirement.startswith("llama-cpp-python") for requirement in extras["demo"])
    assert "demo" in extras["all"][0]


def test_package_data_declares_every_measures_data_file():
    # The calibration sets and the valence anchors are read with importlib.resources, so an
    # installed valuegym without them fails at the first calibration or valence judgement.
    from fnmatch import fnmatch

    globs = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["valuegym"]
    package = REPOSITORY / "valuegym"
    files = [p.relative_to(package).as_posix() for p in (package / "measures/data").iterdir()]
    assert {
        "measures/data/clusterer_calibration.csv",
        "measures/data/valence_anchors.csv",
        "measures/data/valence_calibration.csv",
    } <= set(files)
    assert [f for f in files if not any(fnmatch(f, glob) for glob in globs)] == []


def test_package_data_declares_the_steering_pairs():
    # build_directions reads the shipped pairs with importlib.resources.
    from fnmatch import fnmatch

    globs = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["valuegym"]
    package = REPOSITORY / "valuegym"
    files = [p.relative_to(package).as_posix() for p in (package / "lm/data").iterdir()]
    assert files == ["lm/data/steering_pairs.csv"]
    assert all(any(fnmatch(f, glob) for glob in globs) for f in files)

import pytest

from pointillist.core import runspec
from pointillist.core.errors import InvalidInput
from pointillist.v1 import run_pb2

SPEC_YAML = """
name: rings
source:
  simulation:
    kind: clusters
    seed: 7
    params: {scenario: ring, n_fields: 1}
steps:
  - name: render
    method: gaussian
    params: {pixel_size_nm: 10, sigma_nm: 8.5}
model_versions: {cluster: miro-ring@1}
output_dir: out/rings
"""


def test_yaml_round_trip_is_exact(tmp_path):
    spec = runspec.load_yaml(SPEC_YAML)
    assert spec.source.simulation.seed == 7
    assert spec.steps[0].params["sigma_nm"] == 8.5
    path = tmp_path / "spec.yaml"
    runspec.write_spec(spec, path)
    again = runspec.read_spec(path)
    assert again == spec
    assert "seed: 7" in path.read_text()  # 64-bit ints stay readable ints


def test_file_source_and_run_id():
    spec = run_pb2.RunSpec(run_id=runspec.new_run_id(), name="x")
    spec.source.file = "locs.csv"
    assert runspec.load_yaml(runspec.dump_yaml(spec)) == spec
    assert spec.run_id.startswith("run-") and "." not in spec.run_id


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("name: x\nbogus: 1\n", "bogus"),
        ("- a\n- b\n", "mapping"),
        ("name: [unclosed\n", "YAML"),
        ("steps: 3\n", "steps"),
    ],
)
def test_bad_specs_are_clear_errors(text, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        runspec.load_yaml(text)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(InvalidInput, match=r"nope\.yaml"):
        runspec.read_spec(tmp_path / "nope.yaml")

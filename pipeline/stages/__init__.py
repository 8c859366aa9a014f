"""One thin module per `dvc.yaml` stage: read inputs, call pure functions of `features`/`models`, write outputs."""

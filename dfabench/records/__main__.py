"""``python -m dfabench.records``: rewrite the published JSON Schema files from the record definitions."""

from dfabench.records.schema import write_schemas

for written_path in write_schemas():
    print(f"wrote {written_path}")

"""The knowledge base: normality rules and reference normals per class, kept in Chroma.

Public API: `knowledge.store` (KnowledgeBase, Rule, ReferenceSample, canonical_class). Inside:
    store.py       the KnowledgeBase facade that the agent, UI, CLI and evaluation call
    connection.py  one Chroma connection per store and process, kept in step with other processes
    chroma.py      embedded PersistentClient or HttpClient, and the three collections
    rules.py       rules in Chroma;  references.py  reference normals;  classes.py  classes, settings
    embedding.py   the local sentence-transformers model as a Chroma embedding function
    files.py       content-addressed reference files;  intake.py  checking files before storing
    seed.py        the shipped seed rules (seed/*.json);  archive.py  export and import
    repair.py      records and files made to agree;  reindex.py  re-embedding after a model change
    names.py, models.py  accepted names and values; the Rule and ReferenceSample records
"""

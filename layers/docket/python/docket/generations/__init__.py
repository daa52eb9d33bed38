"""Index generations: the embedding model and index a knowledge base is read from, and the
blue/green rebuild that moves it to another (issue P6).

A generation is (embedding model + version, index location). Exactly one is live; while a rebuild
runs, one more is being built and every chunk change is written to both. Cutover moves the live
pointer in one conditional write; rollback moves it back while the previous index is kept.
"""

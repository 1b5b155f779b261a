"""Who spoke when: speaker models (segmentation, embeddings, clustering) behind one small contract."""

"""Application services between the libraries and the edges (CLI, HTTP): fitting a version for serving
(:mod:`.fitting`), saved model folders with their indexes (:mod:`.persist`), and requests turned into
results with their explanations (:mod:`.pipeline`)."""

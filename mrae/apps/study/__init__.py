"""`mrae study`: the paper's Tables 2 and 3 on one dataset, every row with the same budget.

A study file (``configs/synth/study.yaml``) lists rows; each row names a training config, its
``role`` in the paper's comparisons and a number of seeds (see :mod:`mrae.apps.study.spec`). Every run
lives in ``OUT/<row>/seed<k>/``; a run whose ``final_metrics.json`` exists is done and skipped, a
run with a ``last.pth`` is resumed, so an interrupted study picks up where it stopped.

The modules, one job each:

- :mod:`~mrae.apps.study.pipeline`: the study from its file to its page (what ``mrae study`` calls);
- :mod:`~mrae.apps.study.facts`: hosts, roles and model settings, in one place;
- :mod:`~mrae.apps.study.spec`: read and check the study file (``Study``, ``Row``);
- :mod:`~mrae.apps.study.runner`: run the (row, seed) jobs, resumable, in a process pool;
- :mod:`~mrae.apps.study.status`: where a study stands (``--status``), read without writing;
- :mod:`~mrae.apps.study.measure`: speed, FLOPs and attention of a trained model;
- :mod:`~mrae.apps.study.summary`: the finished runs aggregated into the results dict;
- :mod:`~mrae.apps.study.claims`: the paper's claims judged on the ratio of two rows' AP over seeds
  (:mod:`~mrae.apps.study.effect`), and the same orderings in each other host (the host study);
- :mod:`~mrae.apps.study.discussion`: the verdicts in words, the page's "what held" lists;
- :mod:`~mrae.apps.study.report`: ``results.json`` rendered as the page, its plots and the README
  blocks; its parts: :mod:`~mrae.apps.study.tables` (the tables), :mod:`~mrae.apps.study.budget`
  (the lines on the budget, time per run and machines), :mod:`~mrae.apps.study.sections` (the
  host study and the pretraining comparison), :mod:`~mrae.apps.study.compare` (the comparison
  with another study), :mod:`~mrae.apps.study.readme` (the README blocks) and
  :mod:`~mrae.apps.study.plots` (the plots).

The ``mrae study`` command (:mod:`mrae.commands.study`) parses its options and calls the pipeline.
"""

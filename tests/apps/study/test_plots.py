"""The convergence plot's panels: one per comparison, each beyond the first with MRAE template 2."""

from mrae.apps.study.plots import panels, plot_convergence


def _row(name, role, template=None, curve=((75, 0.1), (150, 0.2))):
    return {"name": name, "role": role, "model": {"template": template} if template else {},
            "seeds": [0], "curves": [list(map(list, curve))]}


def test_rows_fall_into_their_comparisons_panel_with_template_2_beside_them():
    rows = [_row("single C2", "baseline"), _row("MRAE template 1", "mrae", 1),
            _row("MRAE template 2", "mrae", 2), _row("sum", "fusion"),
            _row("t2, synthetic trunk", "start", 2)]
    rows[-1]["model"]["pretrained"] = "synthetic"
    drawn = {title: [e["name"] for e in entries] for title, entries in panels(rows)}
    assert list(drawn) == ["Table 2: single levels, soft attention, MRAE templates",
                           "Fusions and FPN (Fig. 1, 2)", "The trunk's start"]  # no mixed rows: no panel
    assert drawn["Table 2: single levels, soft attention, MRAE templates"] == [
        "single C2", "MRAE template 1", "MRAE template 2"]
    assert drawn["Fusions and FPN (Fig. 1, 2)"] == ["MRAE template 2", "sum"]
    assert drawn["The trunk's start"] == ["MRAE template 2", "t2, synthetic trunk"]


def test_a_trunk_start_is_drawn_beside_the_row_it_differs_from_only_in_its_start():
    rows = [_row("single C1", "baseline"), _row("MRAE template 2", "mrae", 2),
            {**_row("single C1, no pretraining", "start"), "model": {"pretrained": None}}]
    rows[0]["model"]["pretrained"] = "dataset"
    assert [e["name"] for e in panels(rows)[-1][1]] == ["single C1", "single C1, no pretraining"]


def test_a_continued_run_is_drawn_beside_the_row_it_continues():
    mixed = {**_row("t1 -> 2", "mixed", 2), "init_from": "MRAE template 1"}
    rows = [_row("MRAE template 1", "mrae", 1), _row("MRAE template 2", "mrae", 2), mixed]
    assert [e["name"] for e in panels(rows)[-1][1]] == ["MRAE template 2", "MRAE template 1", "t1 -> 2"]


def test_a_study_without_template_2_draws_its_panels_alone(tmp_path):
    rows = [_row("single C1", "baseline"), _row("sum", "fusion")]
    assert [[e["name"] for e in entries] for _, entries in panels(rows)] == [["single C1"], ["sum"]]
    plot_convergence(rows, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_rows_still_draws_an_empty_plot(tmp_path):
    plot_convergence([], tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0


def test_a_plot_replaces_a_link_and_never_writes_its_target(tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"the user's photo")
    (tmp_path / "c.png").symlink_to(photo)
    plot_convergence([_row("single C1", "baseline")], tmp_path / "c.png")
    assert photo.read_bytes() == b"the user's photo"
    assert not (tmp_path / "c.png").is_symlink()
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

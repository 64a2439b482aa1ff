"""The offline HTML report pages: the page layout and single-label sections (pages), every task's report
(tasks), and the decision section (decisions). No torch here."""

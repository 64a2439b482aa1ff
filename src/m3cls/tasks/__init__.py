"""Task types: one label per text (single_label), a set of labels (multi_label), or a number (regression).

``labels`` holds the label set, ``targets`` reads and checks labels against a task and turns them into targets."""

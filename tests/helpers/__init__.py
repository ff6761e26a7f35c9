"""Plain helper functions shared by tests (import as ``helpers.<module>`` or ``tests.helpers``)."""

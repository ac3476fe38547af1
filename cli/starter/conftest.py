# Here so that pytest puts this folder on the import path: the tests import mysteps as `pravah run` does.

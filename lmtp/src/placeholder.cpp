// placeholder so the target has a source; removed when the module gets its code

return { seeds = {}, luajit_seeds = {}, expected = {} }

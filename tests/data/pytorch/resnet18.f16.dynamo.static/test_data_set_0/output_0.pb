

BoutputJó¿J<Ò<1:A8ì±»u¸ç;r2
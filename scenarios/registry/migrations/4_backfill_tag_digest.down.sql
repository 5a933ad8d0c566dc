UPDATE tags SET digest = NULL;

-- Fix the spelling in one step. Every running copy of v1 breaks at once.
ALTER TABLE inovices RENAME TO invoices;

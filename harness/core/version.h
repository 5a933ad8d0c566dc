/*
 * version: twinstage's version, and the version of the shape of the files
 * it writes for machines (report.json, manifest.json). The shape's version
 * changes when a field is removed or changes meaning; fields are added
 * without it. Both are described as JSON Schemas in schema/.
 */
#ifndef TS_VERSION_H
#define TS_VERSION_H

#define TS_VERSION "0.2.0"
/* report.json's "format" */
#define TS_REPORT_FORMAT 1
/* manifest.json's "format" */
#define TS_MANIFEST_FORMAT 1

#endif

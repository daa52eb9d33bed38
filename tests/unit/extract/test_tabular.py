"""CSV and TSV: every row keeps its column names, so a chunk carries what its values mean."""

from __future__ import annotations

from docket.extract import extract_document


def test_csv_rows_become_name_value_lines():
    # Given a CSV with a header row and a quoted cell that holds the delimiter
    data = b'Date,Product,Total\n2024-01-15,"Laptop, Pro",1999.98\n2024-01-16,Mouse,29.99\n'

    # When it is extracted
    document = extract_document(data, "sales.csv")

    # Then each row is one line of "column: value" pairs, after a line naming the columns
    assert document.format == "csv"
    assert document.text.split("\n") == [
        "Columns: Date, Product, Total",
        "Date: 2024-01-15; Product: Laptop, Pro; Total: 1999.98",
        "Date: 2024-01-16; Product: Mouse; Total: 29.99",
    ]
    assert document.metadata["rows"] == "2"


def test_csv_delimiter_is_detected():
    # Given a semicolon-separated file (common where the comma is the decimal mark)
    data = "Stadt;Einwohner\nK\u00f6ln;1084831\nBonn;330579\n".encode()

    # When it is extracted
    document = extract_document(data, "cities.csv")

    # Then the semicolon is found and used
    assert document.metadata["delimiter"] == ";"
    assert "Stadt: K\u00f6ln; Einwohner: 1084831" in document.text


def test_tsv_uses_tabs_and_skips_empty_cells_and_names_extra_columns():
    # Given a TSV with an empty cell and a row longer than the header
    data = b"Region\tSales\nNorth\t\nSouth\t580\textra\n"

    # When it is extracted
    document = extract_document(data, "regions.tsv")

    # Then empty cells are left out and unnamed columns get a position name
    assert document.format == "tsv"
    assert document.text.split("\n")[1:] == [
        "Region: North",
        "Region: South; Sales: 580; column 3: extra",
    ]


def test_csv_multiline_cell_stays_on_its_row():
    # Given a quoted cell with a line break inside
    data = b'id,comment\n1,"first line\nsecond line"\n2,short\n'

    # When it is extracted
    lines = extract_document(data, "comments.csv").text.split("\n")

    # Then the cell's lines are joined so one row is still one line
    assert lines[1] == "id: 1; comment: first line second line"
    assert lines[2] == "id: 2; comment: short"
